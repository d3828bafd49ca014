"""The CRM's pages and JSON API (labapp.crm.web), through Flask's test client, on
a fresh database of the real server with the sample data loaded."""
import pytest

from helpers import SAMPLE, count_rows, postgres_only
from labapp import db
from labapp.crm import data

pytestmark = postgres_only  # deals.currency is a PostgreSQL enum


@pytest.fixture
def client(schema):
    with schema.app_context(), db.engine.begin() as conn:
        data.load(conn, SAMPLE)
    return schema.test_client()


def test_health(client):
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_the_deals_page_lists_deals_with_their_currency(client):
    page = client.get("/deals").get_data(as_text=True)
    assert "<h1>Deals</h1>" in page
    assert page.count("<tr>") == 1 + 10  # the header and the sample's 10 deals
    assert ">EUR</td>" in page and ">USD</td>" in page
    assert client.get("/").headers["Location"] == "/deals"


def test_the_contacts_page_counts_each_contacts_deals(client):
    page = client.get("/contacts").get_data(as_text=True)
    assert page.count("<tr>") == 1 + 6
    assert "<td>Ada Lovelace</td>" in page


def test_the_api_lists_the_latest_deals_first(client):
    deals = client.get("/api/deals?limit=3").json
    assert [d["id"] for d in deals] == [10, 9, 8]
    assert set(deals[0]) == {"id", "contact", "title", "amount", "currency"}
    assert len(client.get("/api/deals?limit=1000").json) == 10  # capped at 100, 10 exist


def test_the_api_adds_a_deal(client, db_url):
    response = client.post("/api/deals", json={"contact_id": 1, "title": "Support plan",
                                               "amount": "1200.5", "currency": "GBP"})
    assert response.status_code == 201
    assert response.json["amount"] == "1200.50" and response.json["currency"] == "GBP"
    assert count_rows(db_url, "deals") == 11


@pytest.mark.parametrize("body, error", [
    ({"contact_id": 1, "title": "", "amount": "1", "currency": "USD"}, "a deal needs a title"),
    ({"contact_id": 1, "title": "x", "amount": "lots", "currency": "USD"}, "amount must be a number"),
    ({"contact_id": 1, "title": "x", "amount": "-5", "currency": "USD"}, "amount must be above 0"),
    ({"contact_id": 1, "title": "x", "amount": "1", "currency": "BTC"}, "unknown currency 'BTC'"),
    ({"contact_id": 999, "title": "x", "amount": "1", "currency": "USD"}, "pick a contact"),
    ([1, 2], "send a JSON object"),
])
def test_the_api_refuses_bad_input_in_one_readable_line(client, db_url, body, error):
    response = client.post("/api/deals", json=body)
    assert response.status_code == 400 and error in response.json["error"]
    assert count_rows(db_url, "deals") == 10


def test_the_api_edits_a_deals_amount_and_says_when_it_is_gone(client, db_url):
    from helpers import rows
    response = client.patch("/api/deals/3", json={"amount": "120"})
    assert response.status_code == 200 and response.json == {"id": 3, "amount": "120.00"}
    assert rows(db_url, "SELECT amount FROM deals WHERE id = 3")[0][0] == 120
    assert client.patch("/api/deals/999", json={"amount": "5"}).status_code == 404
    refused = client.patch("/api/deals/3", json={"amount": "lots"})
    assert refused.status_code == 400 and "amount" in refused.json["error"]
    assert rows(db_url, "SELECT amount FROM deals WHERE id = 3")[0][0] == 120


def test_the_form_adds_a_deal_and_says_so(client, db_url):
    form = client.get("/deals/new").get_data(as_text=True)
    assert '<option>EUR</option>' in form and 'name="title"' in form
    response = client.post("/deals/new", data={"contact_id": "2", "title": "Workshop",
                                               "amount": "300", "currency": "EUR"},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Deal 11 added." in page and "Workshop" in page
    assert count_rows(db_url, "deals") == 11


def test_the_form_flashes_a_readable_error_and_keeps_what_was_typed(client, db_url):
    response = client.post("/deals/new", data={"contact_id": "2", "title": "Workshop",
                                               "amount": "three hundred", "currency": "EUR"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'role="alert">amount must be a number, not &#39;three hundred&#39;' in page
    assert 'value="Workshop"' in page
    assert count_rows(db_url, "deals") == 10
