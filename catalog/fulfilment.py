"""Fulfilment: each order item's steps, run in sequence by Celery tasks.

A step runs in three parts. It is claimed under the order's lock (a step already done, or an
order no longer open, is left alone). The partner is called outside any transaction, with the
step's idempotency key, so a re-delivered task gets the partner's first answer. The result is
recorded under the order's lock together with its local effect (a line created, allowances
granted), so a step has its effect once however often its task runs.

On a permanent failure the item's done steps are undone (compensated), its other steps are
cancelled, the item fails, and the order ends partial or failed once every item has ended.
"""

from django.db import transaction
from django.utils import timezone

from catalog import subscriptions
from catalog.adapters import PermanentPartnerError, partners
from catalog.errors import CatalogError
from catalog.locks import order_lock, step_lock
from catalog.models import FulfilmentStep, OrderEvent, OrderItem, Product, ProductOffering, ProductOrder
from catalog.pricing import add_months
from charging.models import LedgerEntry
from charging.services import bucket_grant_from_definition, line_rate_plan_assign, money_post
from portal.models import LineHold
from portal.services import line_create, line_hold_place
from portal.task_queue import task_queue_on_commit

Step = FulfilmentStep.Kind
State = FulfilmentStep.State


def steps_start_on_commit(*, step_ids: list[int]) -> None:
    """Queues the steps' tasks once the transaction that made them ready has committed."""
    for step_id in step_ids:
        task_queue_on_commit("catalog.tasks.fulfilment_step_run", step_id)


def _line_release_on_commit(*, step: FulfilmentStep, msisdn: str) -> None:
    task_queue_on_commit("catalog.tasks.fulfilment_line_release", step.idempotency_key, msisdn)


# --- Running a step --------------------------------------------------------------------------


def fulfilment_step_execute(*, step_id: int) -> FulfilmentStep:
    """Runs one step. Raises ``TransientPartnerError`` for the task to retry; a permanent
    partner error fails the step (and compensates) here."""
    step = _step_claim(step_id=step_id)
    if step is None:
        return FulfilmentStep.objects.get(pk=step_id)
    try:
        result = _partner_call(step)
    except PermanentPartnerError as exc:
        return fulfilment_step_fail(step_id=step_id, reason=str(exc))
    except Exception as exc:
        _step_note_error(step_id=step_id, error=str(exc))
        raise
    try:
        return _step_record(step_id=step_id, result=result)
    except (PermanentPartnerError, CatalogError) as exc:
        # Refused locally (e.g. by charging): the recording rolled back, the step fails for good.
        return fulfilment_step_fail(step_id=step_id, reason=str(exc))


def _step_claim(*, step_id: int) -> FulfilmentStep | None:
    order_id = FulfilmentStep.objects.values_list("order_id", flat=True).get(pk=step_id)
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        step = step_lock(step_id=step_id)
        if step.state not in (State.PENDING, State.RUNNING) or not order.is_open:
            return None
        earlier_open = step.item.steps.filter(sequence__lt=step.sequence).exclude(state=State.DONE).exists()
        if earlier_open:
            return None  # delivered out of turn; the earlier step starts this one when it is done
        now = timezone.now()
        step.state = State.RUNNING
        step.attempts += 1
        step.started_at = step.started_at or now
        step.save(update_fields=["state", "attempts", "started_at"])
        OrderItem.objects.filter(pk=step.item_id, state=OrderItem.State.ACKNOWLEDGED).update(
            state=OrderItem.State.IN_PROGRESS
        )
        if order.state == ProductOrder.State.ACKNOWLEDGED:
            order.state = ProductOrder.State.IN_PROGRESS
            order.save(update_fields=["state"])
    return FulfilmentStep.objects.select_related("order", "item", "item__offering", "item__line").get(pk=step_id)


def _partner_call(step: FulfilmentStep) -> str:
    item = step.item
    offering = item.offering
    customer_reference = f"customer-{step.order.customer_id}"
    if step.kind == Step.PROVISION:
        return partners.network.line_provision(key=step.idempotency_key, customer_reference=customer_reference)
    if step.kind == Step.SHIP:
        method = offering.shipping or ProductOffering.Shipping.DISTRIBUTOR
        return partners.shipping(method).shipment_create(
            key=step.idempotency_key, sku=offering.code, method=method, customer_reference=customer_reference
        )
    if step.kind == Step.DELIVER:
        return partners.content.content_deliver(
            key=step.idempotency_key, sku=offering.content_sku, msisdn=item.line.msisdn if item.line else ""
        )
    return ""  # activation happens in charging, inside the recording transaction


def _step_note_error(*, step_id: int, error: str) -> None:
    FulfilmentStep.objects.filter(pk=step_id).update(last_error=error[:1000])


def _step_record(*, step_id: int, result: str) -> FulfilmentStep:
    with transaction.atomic(durable=True):
        step = FulfilmentStep.objects.get(pk=step_id)
        order = order_lock(order_id=step.order_id)
        step = step_lock(step_id=step_id)
        if step.state != State.RUNNING:
            if step.kind == Step.PROVISION and result and step.state == State.CANCELLED:
                _line_release_on_commit(step=step, msisdn=result)  # the order was cancelled meanwhile
            return step
        item = OrderItem.objects.select_related("offering", "line", "offering__rate_plan").get(pk=step.item_id)
        if step.kind == Step.PROVISION:
            line = line_create(billing_account=order.billing_account, msisdn=result, device_label=item.offering.name)
            item.line = line
            item.save(update_fields=["line"])
        elif step.kind == Step.ACTIVATE:
            _activate_in_charging(item=item, order=order)
        step.state = State.DONE
        step.partner_reference = result
        step.last_error = ""
        step.finished_at = timezone.now()
        step.save(update_fields=["state", "partner_reference", "last_error", "finished_at"])
        following = item.steps.filter(sequence__gt=step.sequence, state=State.PENDING).order_by("sequence").first()
        if following is not None:
            steps_start_on_commit(step_ids=[following.pk])
        else:
            _item_complete(item=item, order=order)
    return step


def _activate_in_charging(*, item: OrderItem, order: ProductOrder) -> None:
    offering = item.offering
    if item.line is None:
        raise CatalogError(f"{offering.name} has no line to activate on", code="no_line")
    reference = f"order-{order.pk}"
    if offering.rate_plan_id:
        line_rate_plan_assign(line=item.line, rate_plan=offering.rate_plan, reference=reference)
    for definition in offering.allowances.order_by("pk"):
        bucket_grant_from_definition(
            line=item.line, definition=definition, reference=reference, reason=f"{offering.name} activated"
        )


def _item_complete(*, item: OrderItem, order: ProductOrder) -> None:
    """The item's last step is done: its product goes live, its one-off price is charged."""
    now = timezone.now()
    item.state = OrderItem.State.COMPLETED
    item.save(update_fields=["state"])
    product = Product.objects.get(order_item=item)
    product.status = Product.Status.ACTIVE
    product.line = item.line
    product.started_at = now
    if product.contract_months:
        product.contract_ends_at = add_months(now, product.contract_months)
    if product.parent_id is None and item.parent_id and item.offering.kind == ProductOffering.Kind.ADDON:
        product.parent = Product.objects.filter(order_item_id=item.parent_id).first()
    product.save(update_fields=["status", "line", "started_at", "contract_ends_at", "parent"])
    if item.one_off_price:
        money_post(
            billing_account=order.billing_account,
            amount=-item.one_off_price,
            kind=LedgerEntry.Kind.ONE_OFF,
            reason=f"{item.offering.name} (order {order.pk})",
            reference=f"order-item-{item.pk}",
        )
    subscriptions.product_charges_catch_up(product=product, at=now)

    # Add-ons bought with a new plan wait for its line; other children (a plan or an accessory
    # sold with a handset) started on their own.
    waiting = list(
        item.children.filter(state=OrderItem.State.ACKNOWLEDGED, offering__kind=ProductOffering.Kind.ADDON).order_by(
            "pk"
        )
    )
    for child in waiting:
        child.line = item.line
        child.save(update_fields=["line"])
        Product.objects.filter(order_item=child).update(line=item.line)
    steps_start_on_commit(
        step_ids=list(
            FulfilmentStep.objects.filter(item__in=waiting, sequence=1, state=State.PENDING).values_list(
                "pk", flat=True
            )
        )
    )
    _bundle_settle(part=item, order=order)
    _order_settle(order=order)


def _bundle_settle(*, part: OrderItem, order: ProductOrder) -> None:
    """When the last part of a bundle has ended, the bundle completes (and is charged) or fails."""
    bundle = part.parent
    if bundle is None or bundle.offering.kind != ProductOffering.Kind.BUNDLE or bundle.state in OrderItem.TERMINAL:
        return
    parts = list(bundle.children.all())
    if any(p.state not in OrderItem.TERMINAL for p in parts):
        return
    failed = [p for p in parts if p.state != OrderItem.State.COMPLETED]
    if failed:
        bundle.state = OrderItem.State.FAILED
        bundle.state_reason = "; ".join(p.state_reason for p in failed)
        bundle.save(update_fields=["state", "state_reason"])
        Product.objects.filter(order_item=bundle).update(status=Product.Status.TERMINATED, terminated_at=timezone.now())
        return
    bundle.line = next((p.line for p in parts if p.line_id), None)
    bundle.save(update_fields=["line"])
    _item_complete(item=bundle, order=order)


# --- Failure and compensation ----------------------------------------------------------------


def step_compensate(*, step: FulfilmentStep) -> None:
    """Undoes a done step inside the caller's transaction; the partner is told after commit.

    Only provisioning needs undoing: activation and shipping are past the point of no return,
    so an item whose later step fails has at most its number to give back.
    """
    if step.kind == Step.PROVISION and step.item.line_id:
        reason = f"Order {step.order_id} failed: the number is given back"
        line_hold_place(line=step.item.line, cause=LineHold.Cause.TERMINATED, reason=reason, actor=None)
        _line_release_on_commit(step=step, msisdn=step.partner_reference)
    step.state = State.COMPENSATED
    step.save(update_fields=["state"])


def _item_fail(*, item: OrderItem, reason: str, now) -> None:
    for other in item.steps.order_by("-sequence"):
        if other.state == State.DONE:
            step_compensate(step=other)
        elif other.state in (State.PENDING, State.RUNNING):
            other.state = State.CANCELLED
            other.finished_at = now
            other.save(update_fields=["state", "finished_at"])
    item.state = OrderItem.State.FAILED
    item.state_reason = reason
    item.save(update_fields=["state", "state_reason"])
    Product.objects.filter(order_item=item).update(status=Product.Status.TERMINATED, terminated_at=now)
    waiting = item.children.filter(offering__kind=ProductOffering.Kind.ADDON).exclude(state__in=OrderItem.TERMINAL)
    for child in waiting:
        _item_fail(item=child, reason=f"not started: {item.offering} failed", now=now)
    _bundle_settle(part=item, order=item.order)


def fulfilment_step_fail(*, step_id: int, reason: str) -> FulfilmentStep:
    """A step failed for good: undo the item's done steps, fail the item, settle the order."""
    with transaction.atomic(durable=True):
        step = FulfilmentStep.objects.get(pk=step_id)
        order = order_lock(order_id=step.order_id)
        step = step_lock(step_id=step_id)
        if step.state not in (State.PENDING, State.RUNNING):
            return step
        now = timezone.now()
        step.state = State.FAILED
        step.last_error = reason[:1000]
        step.finished_at = now
        step.save(update_fields=["state", "last_error", "finished_at"])
        item = step.item
        _item_fail(item=item, reason=f"{step.get_kind_display()} failed: {reason}", now=now)
        _order_settle(order=order)
    return step


def _order_settle(*, order: ProductOrder) -> None:
    """Once every item has ended: completed, failed (nothing completed) or partial."""
    if not order.is_open:
        return  # settled already (a bundle's last part settles the order twice)
    states = list(order.items.values_list("state", "state_reason"))
    if any(state not in OrderItem.TERMINAL for state, _ in states):
        return
    completed = sum(1 for state, _ in states if state == OrderItem.State.COMPLETED)
    if completed == len(states):
        order.state = ProductOrder.State.COMPLETED
        order.state_reason = ""
    else:
        order.state = ProductOrder.State.PARTIAL if completed else ProductOrder.State.FAILED
        order.state_reason = "; ".join(reason for state, reason in states if state == OrderItem.State.FAILED)
    order.completed_at = timezone.now()
    order.save(update_fields=["state", "state_reason", "completed_at"])
    OrderEvent.objects.create(order=order, text=f"Order {order.get_state_display().lower()}")


def fulfilment_step_retry(*, step: FulfilmentStep, actor, reason: str) -> FulfilmentStep:
    """An agent tries a failed item again from its first undone step (a new partner round)."""
    if not reason.strip():
        raise CatalogError("say why the step is retried", code="reason_required", field="reason")
    with transaction.atomic(durable=True):
        order = order_lock(order_id=step.order_id)
        step = step_lock(step_id=step.pk)
        if step.state != State.FAILED:
            raise CatalogError("only a failed step can be retried", code="not_retryable")
        if order.state == ProductOrder.State.CANCELLED:
            raise CatalogError("the order is cancelled", code="not_retryable")
        items = [step.item, *step.item.children.filter(state=OrderItem.State.FAILED)]
        bundle = step.item.parent
        if bundle is not None and bundle.offering.kind == ProductOffering.Kind.BUNDLE:
            items.append(bundle)  # fails with its part, and completes with it again
        for item in items:
            for other in item.steps.exclude(state=State.DONE):
                other.state = State.PENDING
                other.round += 1
                other.attempts = 0
                other.started_at = other.finished_at = None
                other.partner_reference = ""
                other.save()
            item.state = OrderItem.State.ACKNOWLEDGED
            item.state_reason = ""
            item.save(update_fields=["state", "state_reason"])
            Product.objects.filter(order_item=item).update(status=Product.Status.PENDING_ACTIVE, terminated_at=None)
        order.state = ProductOrder.State.IN_PROGRESS
        order.state_reason = ""
        order.completed_at = None
        order.save(update_fields=["state", "state_reason", "completed_at"])
        OrderEvent.objects.create(
            order=order, actor=actor, text=f"Retried {step.get_kind_display().lower()}: {reason}"[:255]
        )
        first = step.item.steps.filter(state=State.PENDING).order_by("sequence").first()
        steps_start_on_commit(step_ids=[first.pk])
    return step
