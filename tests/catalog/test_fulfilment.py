from decimal import Decimal

import pytest

from catalog.adapters import PERMANENT, TRANSIENT
from catalog.fulfilment import fulfilment_step_retry
from catalog.models import Channel, FulfilmentStep, OrderItem, Product, ProductOrder
from catalog.services import cart_guided_add, cart_item_add, order_cancel, order_place
from catalog.tasks import fulfilment_step_run
from charging.models import Bucket, LedgerEntry, LineRatePlan
from portal.models import AuditEntry, Line
from tests.catalog.factories import cart_for, shop
from tests.factories import GB

pytestmark = pytest.mark.django_db


def place_guided(capture, *, accessories=True):
    s = shop()
    cart, account = cart_for()
    cart_guided_add(cart=cart, handset=s["handset"], plan=s["plan"], accessories=[s["case"]] if accessories else [])
    with capture(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    order.refresh_from_db()
    return order, s, account


def test_a_guided_order_is_provisioned_activated_shipped_and_charged(django_capture_on_commit_callbacks):
    order, s, account = place_guided(django_capture_on_commit_callbacks)

    assert order.state == ProductOrder.State.COMPLETED
    steps = {(step.item.offering.code, step.kind): step.state for step in order.steps.select_related("item__offering")}
    assert steps == {
        ("pixel-9", "ship"): "done",
        ("unlimited-20", "provision"): "done",
        ("unlimited-20", "activate"): "done",
        ("pixel-9-case", "ship"): "done",
    }
    line = Line.objects.get(billing_account=account)
    assert LineRatePlan.objects.get(line=line).rate_plan == s["plan"].rate_plan
    assert list(Bucket.objects.filter(line=line).values_list("name", "initial")) == [("Data 10 GB", 10 * GB)]
    one_offs = LedgerEntry.objects.filter(billing_account=account, kind=LedgerEntry.Kind.ONE_OFF)
    assert sorted(one_offs.values_list("amount", flat=True)) == [Decimal("-199.0000"), Decimal("-19.9500")]
    assert LedgerEntry.objects.filter(billing_account=account, kind=LedgerEntry.Kind.RECURRING).count() == 1
    plan_product = Product.objects.get(offering=s["plan"])
    assert plan_product.status == Product.Status.ACTIVE
    assert plan_product.line == line
    assert plan_product.contract_ends_at is not None


def test_a_step_that_fails_twice_then_succeeds_completes_the_order(
    simulated_partners, django_capture_on_commit_callbacks
):
    simulated_partners["network"].script.extend([TRANSIENT, TRANSIENT])

    order, _, _ = place_guided(django_capture_on_commit_callbacks)

    assert order.state == ProductOrder.State.COMPLETED
    provision = order.steps.get(kind=FulfilmentStep.Kind.PROVISION)
    assert provision.attempts == 3
    assert provision.last_error == ""
    assert Line.objects.count() == 1


def test_a_permanent_failure_undoes_the_item_and_leaves_the_order_partial(
    simulated_partners, django_capture_on_commit_callbacks
):
    simulated_partners["distributor"].script.append(PERMANENT)

    order, s, account = place_guided(django_capture_on_commit_callbacks, accessories=False)

    assert order.state == ProductOrder.State.PARTIAL
    assert order.state_reason == "Ship failed: distributor refused the request"
    handset_item = order.items.get(offering=s["handset"])
    assert handset_item.state == OrderItem.State.FAILED
    assert Product.objects.get(order_item=handset_item).status == Product.Status.TERMINATED
    # The handset was never sent, so it is never charged; the plan went live and is.
    assert not LedgerEntry.objects.filter(billing_account=account, reference=f"order-item-{handset_item.pk}").exists()
    assert order.items.get(offering=s["plan"]).state == OrderItem.State.COMPLETED


def test_a_step_that_keeps_failing_gives_up_after_its_retries_and_fails_the_order(
    simulated_partners, django_capture_on_commit_callbacks
):
    s = shop()
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=s["other"])
    simulated_partners["network"].script.extend([TRANSIENT] * 6)  # more than the task's retries

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.FAILED
    assert "gave up after 6 attempts" in order.state_reason
    assert not Line.objects.exists()
    assert not LedgerEntry.objects.filter(billing_account=account).exists()


def test_a_number_is_given_back_when_activation_fails_after_provisioning(
    simulated_partners, django_capture_on_commit_callbacks, monkeypatch
):
    from catalog import fulfilment
    from catalog.adapters import PermanentPartnerError

    def refuse(**kwargs):
        raise PermanentPartnerError("charging refused the rate plan")

    monkeypatch.setattr(fulfilment, "_activate_in_charging", refuse)
    s = shop()
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=s["other"])

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.FAILED
    steps = dict(order.steps.values_list("kind", "state"))
    assert steps == {"provision": "compensated", "activate": "failed"}
    line = Line.objects.get()
    assert list(line.holds.values_list("cause", "placed_by", "reason", "lifted_at")) == [
        ("terminated", None, f"Order {order.pk} failed: the number is given back", None)
    ]
    assert not line.is_active
    assert list(AuditEntry.objects.values_list("actor", "action", "target_id")) == [
        (None, "line_hold.place", str(line.pk))
    ]
    assert simulated_partners["network"].effects[-1][0].startswith("release-")


def test_running_a_step_task_twice_has_one_effect(simulated_partners, django_capture_on_commit_callbacks):
    order, s, account = place_guided(django_capture_on_commit_callbacks, accessories=False)
    ledger_before = LedgerEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        for step in order.steps.all():
            fulfilment_step_run.delay(step.pk)

    assert Line.objects.count() == 1
    assert Bucket.objects.count() == 1
    assert LedgerEntry.objects.count() == ledger_before
    assert len(simulated_partners["network"].effects) == 1
    assert len(simulated_partners["distributor"].effects) == 1


def test_a_redelivered_provisioning_gets_the_partners_first_answer(simulated_partners):
    network = simulated_partners["network"]

    first = network.line_provision(key="step-7-r1", customer_reference="c")
    again = network.line_provision(key="step-7-r1", customer_reference="c")

    assert first == again
    assert len(network.effects) == 1


def test_an_agent_retries_a_failed_step_and_the_order_completes(
    simulated_partners, django_capture_on_commit_callbacks, admin_user
):
    simulated_partners["distributor"].script.append(PERMANENT)
    order, s, _ = place_guided(django_capture_on_commit_callbacks, accessories=False)
    failed = order.steps.get(state=FulfilmentStep.State.FAILED)

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment_step_retry(step=failed, actor=admin_user, reason="distributor restocked")

    order.refresh_from_db()
    failed.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert failed.state == FulfilmentStep.State.DONE
    assert failed.round == 2
    assert order.events.filter(actor=admin_user, text="Retried ship: distributor restocked").exists()


def test_an_order_is_cancelled_before_the_point_of_no_return(django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    cart_guided_add(cart=cart, handset=s["handset"], plan=s["plan"], accessories=[])
    order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)  # steps not yet run

    order_cancel(order=order, reason="changed my mind", actor=account.customer.user)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.CANCELLED
    assert set(order.steps.values_list("state", flat=True)) == {"cancelled"}
    assert set(Product.objects.values_list("status", flat=True)) == {"terminated"}
    # A task delivered after the cancellation does nothing.
    fulfilment_step_run.delay(order.steps.first().pk)
    assert not Line.objects.exists()


def test_an_order_cannot_be_cancelled_once_shipped(django_capture_on_commit_callbacks):
    from catalog.errors import CatalogError

    order, _, _ = place_guided(django_capture_on_commit_callbacks)
    ProductOrder.objects.filter(pk=order.pk).update(state=ProductOrder.State.IN_PROGRESS)

    with pytest.raises(CatalogError, match="too late to cancel"):
        order_cancel(order=order, reason="too slow", actor=None)

    assert ProductOrder.objects.get(pk=order.pk).state == ProductOrder.State.IN_PROGRESS


def test_each_step_is_started_once(simulated_partners, django_capture_on_commit_callbacks):
    place_guided(django_capture_on_commit_callbacks)

    assert len(simulated_partners["network"].requests) == 1
    assert len(simulated_partners["distributor"].requests) == 1
    assert len(simulated_partners["drop_ship"].requests) == 1


def test_an_addon_bought_with_a_new_plan_is_activated_on_the_plans_new_line(django_capture_on_commit_callbacks):
    s = shop()
    cart, account = cart_for()
    plan_item = cart_item_add(cart=cart, offering=s["plan"])
    cart_item_add(cart=cart, offering=s["addon"], parent=plan_item)

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    line = Line.objects.get()
    assert sorted(Bucket.objects.filter(line=line).values_list("name", flat=True)) == ["Data 10 GB", "Data 5 GB"]
    addon = Product.objects.get(offering=s["addon"])
    assert addon.line == line
    assert addon.parent == Product.objects.get(offering=s["plan"])


def bundle_of(s, **fields):
    from tests.catalog.factories import OfferingFactory

    bundle = OfferingFactory(
        kind="bundle",
        name="Pixel 9 with Unlimited 20",
        code="pixel-bundle",
        one_off_price=Decimal("49.00"),
        recurring_price=Decimal("40.00"),
        contract_months=24,
        **fields,
    )
    bundle.components.set([s["handset"], s["plan"]])
    return bundle


def test_a_bundle_is_fulfilled_through_its_parts_and_charged_as_one(django_capture_on_commit_callbacks):
    s = shop()
    bundle = bundle_of(s)
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=bundle)

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert sorted(order.steps.values_list("kind", flat=True)) == ["activate", "provision", "ship"]
    money = LedgerEntry.objects.filter(billing_account=account, money_balance__isnull=False)
    assert list(money.filter(kind=LedgerEntry.Kind.ONE_OFF).values_list("amount", flat=True)) == [Decimal("-49.0000")]
    assert money.filter(kind=LedgerEntry.Kind.RECURRING).get().reason.startswith("Pixel 9 with Unlimited 20, ")
    line = Line.objects.get()
    assert Product.objects.get(offering=bundle).line == line
    assert LineRatePlan.objects.get(line=line).rate_plan == s["plan"].rate_plan


def test_a_bundle_whose_part_fails_is_not_charged_and_completes_when_an_agent_retries(
    simulated_partners, django_capture_on_commit_callbacks, admin_user
):
    simulated_partners["distributor"].script.append(PERMANENT)
    s = shop()
    bundle = bundle_of(s)
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=bundle)
    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    bundle_item = order.items.get(offering=bundle)
    assert order.state == ProductOrder.State.PARTIAL
    assert bundle_item.state == OrderItem.State.FAILED
    assert not LedgerEntry.objects.filter(billing_account=account, money_balance__isnull=False).exists()

    with django_capture_on_commit_callbacks(execute=True):
        fulfilment_step_retry(
            step=order.steps.get(state=FulfilmentStep.State.FAILED), actor=admin_user, reason="back in stock"
        )

    order.refresh_from_db()
    bundle_item.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert bundle_item.state == OrderItem.State.COMPLETED
    assert LedgerEntry.objects.filter(billing_account=account, kind=LedgerEntry.Kind.ONE_OFF).count() == 1


def test_a_content_addon_on_an_existing_line_is_activated_then_delivered(
    simulated_partners, django_capture_on_commit_callbacks
):
    from tests.catalog.factories import AddonFactory

    s = shop()
    streaming = AddonFactory(name="Streaming TV", code="streaming", content_sku="tv-basic", allowances=[])
    s["other"].allowed_addons.set([streaming])
    cart, account = cart_for()
    cart_item_add(cart=cart, offering=s["other"])
    with django_capture_on_commit_callbacks(execute=True):
        order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)
    line = Line.objects.get()
    cart, _ = cart_for(account)
    cart_item_add(cart=cart, offering=streaming, line=line)

    with django_capture_on_commit_callbacks(execute=True):
        order = order_place(cart=cart, placed_by=account.customer.user, channel=Channel.WEB)

    order.refresh_from_db()
    assert order.state == ProductOrder.State.COMPLETED
    assert list(order.steps.order_by("sequence").values_list("kind", "state")) == [
        ("activate", "done"),
        ("deliver", "done"),
    ]
    assert order.steps.get(kind="deliver").partner_reference.startswith("ENT-tv-basic-")
    addon = Product.objects.get(offering=streaming)
    assert (addon.line, addon.parent.offering) == (line, s["other"])
