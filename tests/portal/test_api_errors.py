"""Every answer of the API that is not a success is the one error body, JSON, with its status."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.catalog.factories import OfferingFactory, shop
from tests.factories import BillingAccountFactory

pytestmark = pytest.mark.django_db

TWENTY_DIGITS = "9" * 20


def error(code: str, reason: str, status: int, **extensions) -> dict:
    return {"@type": "Error", "code": code, "reason": reason, "message": reason, "status": str(status), **extensions}


@pytest.fixture
def consumer():
    client = APIClient()
    client.force_login(BillingAccountFactory().customer.user)
    return client


@pytest.mark.parametrize("path", ["/api/productOffering/", "/api/shoppingCart/", "/api/productOrder/", "/api/product/"])
def test_a_request_without_credentials_gets_401_with_a_challenge(path):
    response = APIClient().get(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == error("not_authenticated", "Authentication credentials were not provided.", 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/nope/"),
        ("post", "/api/usage"),  # no final slash: not redirected, not a server error
        ("get", "/api/productOffering"),
        ("get", f"/api/productOffering/{TWENTY_DIGITS}/"),
        ("get", f"/api/productOrder/{TWENTY_DIGITS}/"),
        ("post", "/api/chargingSession/a/b/update/"),
    ],
)
def test_an_unknown_route_or_object_answers_404_in_json(consumer, method, path):
    response = getattr(consumer, method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert response.json()["status"] == "404"


def test_a_page_outside_the_api_still_answers_its_html_404():
    response = Client().get("/nope/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_not_allowed_answers_405_in_the_error_body(consumer):
    response = consumer.delete("/api/productOrder/")

    assert response.status_code == 405
    assert response.json() == error("method_not_allowed", 'Method "DELETE" not allowed.', 405)


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ({"compatibleWith": TWENTY_DIGITS}, "compatibleWith", "Ensure this value is less than or equal to"),
        ({"fits": TWENTY_DIGITS}, "fits", "Ensure this value is less than or equal to"),
        ({"fits": "１２"}, "fits", "A valid integer is required."),
        ({"compatibleWith": "0"}, "compatibleWith", "Ensure this value is greater than or equal to 1."),
        ({"kind": "spaceship"}, "kind", '"spaceship" is not a valid choice.'),
    ],
)
def test_a_malformed_offering_filter_answers_400_naming_it(consumer, query, field, reason):
    response = consumer.get("/api/productOffering/", query)

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("invalid", field)
    assert response.json()["reason"].startswith(reason)


def test_a_twenty_digit_limit_is_cut_to_the_largest_page(consumer):
    shop()
    OfferingFactory.create_batch(3)

    response = consumer.get("/api/productOffering/", {"limit": TWENTY_DIGITS, "offset": "1"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == response.json()["count"] - 1
    assert "limit=500" in response.json()["previous"]


@pytest.mark.parametrize("query", ["q=a%00b", "kind=plan%00", "x%00=1"])
def test_a_nul_character_in_the_query_answers_400(consumer, query):
    response = consumer.get(f"/api/productOffering/?{query}")

    assert response.status_code == 400
    assert response.json() == error("invalid", "NUL characters are not allowed in a URL.", 400)


def test_a_nul_character_in_the_path_answers_400(usage_poster):
    response = usage_poster.post("/api/chargingEvent/a%00b/refund/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["reason"] == "NUL characters are not allowed in a URL."


def test_a_body_past_the_upload_limit_answers_413_in_the_error_body(usage_poster, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    records = [{"external_id": f"r-{n}", "msisdn": "31600000000", "service": "data", "quantity": 1} for n in range(50)]

    response = usage_poster.post("/api/usage/bulk/", {"records": records}, format="json")

    assert response.status_code == 413
    assert response.json() == error("payload_too_large", "A request body is at most 1,000 bytes.", 413)
