"""The installed base: recurring charges per billing period, plan changes, termination.

Billing periods are calendar months in the customer's time zone. A product's first period is
prorated from the day it started; every period's charge is posted to the charging ledger once
(a unique row per product and period), with the promotion phase in its reason so the bill can
show it.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog import pricing, rules
from catalog.errors import CatalogError
from catalog.locks import product_lock
from catalog.models import Product, ProductEvent, ProductOffering, RecurringCharge
from charging.models import LedgerEntry
from charging.services import bucket_grant_from_definition, line_rate_plan_assign, money_post
from portal.money import money

BILLED = (Product.Status.ACTIVE,)


def _local_start(product: Product) -> date:
    return pricing.local_date(product.started_at, product.customer.time_zone)


def _period_charge_post(*, product: Product, period_start: date) -> RecurringCharge | None:
    """Posts one period's charge inside the caller's transaction; None if nothing is due."""
    start = _local_start(product)
    if period_start < pricing.month_start(start) or not product.recurring_price:
        return None
    period_days = pricing.days_in_month(period_start)
    index = pricing.months_between(start, period_start)
    active_days = period_days - start.day + 1 if index == 0 else period_days
    phases = pricing.phases_from_json(product.promotion_phases)
    base, amount = pricing.period_charge(
        base=product.recurring_price,
        phases=phases,
        period_index=index,
        active_days=active_days,
        period_days=period_days,
    )
    description = f"{product.offering.name}, {period_start:%B %Y}"
    found = pricing.phase_at(phases, index)
    if found is not None and product.promotion is not None:
        description += f" ({product.promotion.name}: {found[1].describe()})"
    if active_days != period_days:
        description += f", {active_days} of {period_days} days"
    try:
        with transaction.atomic():
            charge = RecurringCharge.objects.create(
                product=product,
                period_start=period_start,
                period_index=index,
                base_amount=base,
                amount=amount,
                description=description[:255],
            )
    except IntegrityError:
        return None  # posted already (by another run of the task)
    entry = money_post(
        billing_account=product.billing_account,
        amount=-amount,
        kind=LedgerEntry.Kind.RECURRING,
        reason=description[:255],
        reference=f"product-{product.pk}-{period_start:%Y-%m}",
    )
    RecurringCharge.objects.filter(pk=charge.pk).update(ledger_entry_id=entry.pk)
    return charge


def product_charges_catch_up(*, product: Product, at: datetime) -> list[RecurringCharge]:
    """Posts every period from the product's start to ``at``'s period that has no charge yet.

    Runs inside the caller's transaction; each period is posted once, however often it runs.
    """
    if product.status not in BILLED or product.started_at is None or not product.recurring_price:
        return []
    current = pricing.month_start(pricing.local_date(at, product.customer.time_zone))
    charged = set(product.recurring_charges.values_list("period_start", flat=True))
    period = pricing.month_start(_local_start(product))
    posted = []
    while period <= current:
        if period not in charged:
            charge = _period_charge_post(product=product, period_start=period)
            if charge is not None:
                posted.append(charge)
        period = pricing.add_months(period, 1)
    return posted


def recurring_charges_post(*, at: datetime | None = None) -> int:
    """The periodic task's work: every active product's charges up to now. Returns how many."""
    at = at or timezone.now()
    posted = 0
    product_ids = Product.objects.filter(status__in=BILLED, recurring_price__gt=0).values_list("pk", flat=True)
    for product_id in product_ids.iterator():
        with transaction.atomic(durable=True):
            product = product_lock(product_id=product_id)
            if product.status not in BILLED:
                continue
            product = Product.objects.select_related("customer", "offering", "promotion", "billing_account").get(
                pk=product_id
            )
            posted += len(product_charges_catch_up(product=product, at=at))
    return posted


# --- Plan change -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanChangeQuote:
    credit: Decimal
    new_charge: Decimal
    termination_fee: Decimal
    early_upgrade: bool

    @property
    def total(self) -> Decimal:
        """What the change costs now (negative: the customer is owed money)."""
        return self.new_charge + self.termination_fee - self.credit


def _unused_credit(*, product: Product, at: datetime) -> Decimal:
    """The part of the current period's charge for the days from ``at`` to the period's end."""
    day = pricing.local_date(at, product.customer.time_zone)
    period_start = pricing.month_start(day)
    charge = product.recurring_charges.filter(period_start=period_start).first()
    if charge is None:
        return money(0)
    period_days = pricing.days_in_month(period_start)
    start = _local_start(product)
    first_day = start.day if charge.period_index == 0 else 1
    charged_days = period_days - first_day + 1
    used_days = max(0, day.day - first_day)
    _, unused = pricing.prorate_split(charge.amount, used_days, charged_days)
    return unused


def _termination_fee(*, product: Product, at: datetime) -> Decimal:
    if product.contract_ends_at is None or product.contract_ends_at <= at:
        return money(0)
    start = _local_start(product)
    current = pricing.months_between(start, pricing.local_date(at, product.customer.time_zone))
    return pricing.early_termination_fee(
        base=product.recurring_price,
        phases=pricing.phases_from_json(product.promotion_phases),
        from_period=current + 1,
        contract_periods=product.contract_months,
        percent=product.offering.termination_fee_percent,
    )


def plan_change_quote(*, product: Product, offering: ProductOffering, at: datetime | None = None) -> PlanChangeQuote:
    """What changing the product's plan to ``offering`` at ``at`` would credit and cost."""
    at = at or timezone.now()
    day = pricing.local_date(at, product.customer.time_zone)
    period_days = pricing.days_in_month(day)
    _, new_charge = pricing.period_charge(
        base=offering.recurring_price,
        phases=[],
        period_index=0,
        active_days=period_days - day.day + 1,
        period_days=period_days,
    )
    upgrade = offering.recurring_price >= product.recurring_price
    early_upgrade = upgrade and rules.in_early_upgrade_window(product, at=at)
    fee = money(0) if early_upgrade else _termination_fee(product=product, at=at)
    return PlanChangeQuote(
        credit=_unused_credit(product=product, at=at),
        new_charge=new_charge,
        termination_fee=fee,
        early_upgrade=early_upgrade and product.contract_ends_at is not None and product.contract_ends_at > at,
    )


def product_plan_change(
    *, product: Product, offering: ProductOffering, actor=None, reason: str = "", at: datetime | None = None
) -> Product:
    """Moves a line to another plan mid-period: the unused days of the old plan are credited,
    the new plan is charged for the rest of the period, and a contract left early costs its
    termination fee (waived for an upgrade in the early-upgrade window)."""
    at = at or timezone.now()
    with transaction.atomic(durable=True):
        product = product_lock(product_id=product.pk)
        product = Product.objects.select_related("customer", "offering", "line", "billing_account", "promotion").get(
            pk=product.pk
        )
        if product.status != Product.Status.ACTIVE or product.offering.kind != ProductOffering.Kind.PLAN:
            raise CatalogError("only an active plan can be changed", code="not_changeable", field="product")
        if offering.kind != ProductOffering.Kind.PLAN or offering.pk == product.offering_id:
            raise CatalogError("choose another plan", code="not_a_new_plan", field="offering")
        if not ProductOffering.objects.available(at=at).filter(pk=offering.pk).exists():
            raise CatalogError(f"{offering.name} is not for sale", code="not_for_sale", field="offering")
        product_charges_catch_up(product=product, at=at)  # the old plan's period is charged before it is credited
        quote = plan_change_quote(product=product, offering=offering, at=at)
        reference = f"product-{product.pk}-change"
        if quote.credit:
            money_post(
                billing_account=product.billing_account,
                amount=quote.credit,
                kind=LedgerEntry.Kind.REFUND,
                reason=f"{product.offering.name}: unused days after the change to {offering.name}",
                reference=reference,
                actor=actor,
            )
        if quote.termination_fee:
            money_post(
                billing_account=product.billing_account,
                amount=-quote.termination_fee,
                kind=LedgerEntry.Kind.ONE_OFF,
                reason=f"{product.offering.name}: early termination fee",
                reference=reference,
                actor=actor,
            )
        product.status = Product.Status.TERMINATED
        product.terminated_at = at
        product.save(update_fields=["status", "terminated_at"])
        new = Product.objects.create(
            customer=product.customer,
            billing_account=product.billing_account,
            offering=offering,
            line=product.line,
            status=Product.Status.ACTIVE,
            recurring_price=offering.recurring_price,
            contract_months=offering.contract_months,
            started_at=at,
            contract_ends_at=pricing.add_months(at, offering.contract_months) if offering.contract_months else None,
        )
        product.addons.filter(status=Product.Status.ACTIVE).update(parent=new)
        note = f"Changed to {offering.name}" + (f": {reason}" if reason else "")
        ProductEvent.objects.create(product=product, actor=actor, created_at=at, text=note[:255])
        was = f"Changed from {product.offering.name}"
        ProductEvent.objects.create(product=new, actor=actor, created_at=at, text=was[:255])
        if product.line is not None:
            if offering.rate_plan_id:
                line_rate_plan_assign(line=product.line, rate_plan=offering.rate_plan, reference=f"product-{new.pk}")
            for definition in offering.allowances.order_by("pk"):
                bucket_grant_from_definition(
                    line=product.line,
                    definition=definition,
                    reference=f"product-{new.pk}",
                    reason=f"Changed to {offering.name}" + (f": {reason}" if reason else ""),
                    actor=actor,
                )
        new = Product.objects.select_related("customer", "offering", "billing_account", "promotion").get(pk=new.pk)
        product_charges_catch_up(product=new, at=at)
    return new


def product_terminate(*, product: Product, reason: str, actor=None, at: datetime | None = None) -> Product:
    """Ends a product (and its add-ons): the unused days are credited, a contract left early
    costs its termination fee."""
    if not reason.strip():
        raise CatalogError("say why the product is terminated", code="reason_required", field="reason")
    at = at or timezone.now()
    with transaction.atomic(durable=True):
        product = product_lock(product_id=product.pk)
        if product.status == Product.Status.TERMINATED:
            raise CatalogError("already terminated", code="not_terminable", field="product")
        product = Product.objects.select_related("customer", "offering", "billing_account", "promotion").get(
            pk=product.pk
        )
        product_charges_catch_up(product=product, at=at)
        reference = f"product-{product.pk}-termination"
        credit = _unused_credit(product=product, at=at)
        fee = _termination_fee(product=product, at=at)
        if credit:
            money_post(
                billing_account=product.billing_account,
                amount=credit,
                kind=LedgerEntry.Kind.REFUND,
                reason=f"{product.offering.name}: unused days after termination",
                reference=reference,
                actor=actor,
            )
        if fee:
            money_post(
                billing_account=product.billing_account,
                amount=-fee,
                kind=LedgerEntry.Kind.ONE_OFF,
                reason=f"{product.offering.name}: early termination fee",
                reference=reference,
                actor=actor,
            )
        ended = [product, *product.addons.exclude(status=Product.Status.TERMINATED)]
        Product.objects.filter(pk__in=[p.pk for p in ended]).update(status=Product.Status.TERMINATED, terminated_at=at)
        ProductEvent.objects.bulk_create(
            ProductEvent(product=p, actor=actor, created_at=at, text=f"Terminated: {reason}"[:255]) for p in ended
        )
        product.refresh_from_db()
    return product


def product_suspend(*, product: Product, suspend: bool, reason: str, actor=None) -> Product:
    """Suspends (no recurring charges while suspended) or resumes an active product."""
    if not reason.strip():
        raise CatalogError("say why", code="reason_required", field="reason")
    active, suspended = Product.Status.ACTIVE, Product.Status.SUSPENDED
    source, target = (active, suspended) if suspend else (suspended, active)
    with transaction.atomic():
        product = product_lock(product_id=product.pk)
        if product.status != source:
            raise CatalogError(f"the product is {product.get_status_display().lower()}", code="wrong_status")
        product.status = target
        product.save(update_fields=["status"])
        verb = "Suspended" if suspend else "Resumed"
        ProductEvent.objects.create(product=product, actor=actor, text=f"{verb}: {reason}"[:255])
    return product
