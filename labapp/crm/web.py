"""The CRM's web face: pages for contacts and deals, a form to add a deal, and
a small JSON API, in one blueprint (Flask's tutorial, flaskr, is the model).

    GET  /              -> the deals page
    GET  /contacts      contacts and how many deals each has
    GET  /deals         the latest deals, with their currency
    GET|POST /deals/new a form to add a deal (a readable error on bad input)
    GET  /api/deals     the latest deals as JSON (?limit=N, at most 100)
    POST /api/deals     add a deal: {"contact_id", "title", "amount", "currency"}
    PATCH /api/deals/N  change deal N's amount: {"amount"} (404 once the deal is gone)
    GET  /api/health    {"status": "ok"} once the database answers

Every view reads the models the app was built with (`create_app(models=...)`):
a lab's workspace has its own models.py, and two releases of it can serve at
once (labapp.live.appserver), each with the code it was deployed with.
"""
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask import (Blueprint, current_app, flash, jsonify, redirect, render_template, request,
                   url_for)

bp = Blueprint("web", __name__)
LATEST, MOST = 20, 100  # deals a page shows, and the most one API call returns


def models():
    return current_app.extensions["labapp.crm.models"]


def session():
    """The session of the Flask-SQLAlchemy this app was built with (the app's own, not a
    module global bound at import time: a test may build an app on another instance)."""
    return current_app.extensions["sqlalchemy"].session


def deal_title_column():
    """The column that holds a deal's title in these models (lab 08 renames it)."""
    deal = models().Deal
    return getattr(deal, "title", None) or deal.name


def latest_deals(limit=LATEST):
    m = models()
    return session().execute(
        sa.select(m.Deal, m.Contact).join(m.Contact, m.Deal.contact_id == m.Contact.id)
        .order_by(m.Deal.id.desc()).limit(limit)).all()


def as_json(deal, contact):
    title = deal_title_column().key
    return {"id": deal.id, "contact": contact.name, "title": getattr(deal, title),
            "amount": str(deal.amount), "currency": deal.currency.name}


class BadDeal(ValueError):
    """Input a person can fix; its message says how."""


def new_deal(form):
    """A Deal from the fields of a form or a JSON body, or BadDeal."""
    m = models()
    title = str(form.get("title") or "").strip()
    if not title:
        raise BadDeal("a deal needs a title")
    try:
        amount = Decimal(str(form.get("amount") or ""))
    except InvalidOperation:
        raise BadDeal(f"amount must be a number, not {form.get('amount')!r}") from None
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e10"):
        raise BadDeal("amount must be above 0 and below 10,000,000,000")
    currency = str(form.get("currency") or "")
    if currency not in m.DealCurrency.__members__:
        known = ", ".join(m.DealCurrency.__members__)
        raise BadDeal(f"unknown currency {currency!r} (this app knows {known})")
    try:
        contact = session().get(m.Contact, int(form.get("contact_id") or 0))
    except (TypeError, ValueError):
        contact = None
    if contact is None:
        raise BadDeal("pick a contact that exists")
    return m.Deal(contact_id=contact.id, amount=amount.quantize(Decimal("0.01")),
                  currency=m.DealCurrency[currency], **{deal_title_column().key: title})


@bp.route("/")
def index():
    return redirect(url_for("web.deals"))


@bp.route("/contacts")
def contacts():
    m = models()
    rows = session().execute(
        sa.select(m.Contact, sa.func.count(m.Deal.id))
        .outerjoin(m.Deal, m.Deal.contact_id == m.Contact.id)
        .group_by(m.Contact.id).order_by(m.Contact.name)).all()
    return render_template("web/contacts.html", rows=rows)


@bp.route("/deals")
def deals():
    return render_template("web/deals.html", rows=latest_deals(), title=deal_title_column().key)


@bp.route("/deals/new", methods=("GET", "POST"))
def create_deal():
    m = models()
    if request.method == "POST":
        try:
            deal = new_deal(request.form)
        except BadDeal as exc:
            flash(str(exc))
        else:
            session().add(deal)
            session().commit()
            flash(f"Deal {deal.id} added.")
            return redirect(url_for("web.deals"))
    contacts = session().scalars(sa.select(m.Contact).order_by(m.Contact.name)).all()
    return render_template("web/new_deal.html", contacts=contacts,
                           currencies=list(m.DealCurrency.__members__), form=request.form)


@bp.get("/api/deals")
def api_deals():
    limit = min(max(request.args.get("limit", LATEST, type=int), 1), MOST)
    return jsonify([as_json(deal, contact) for deal, contact in latest_deals(limit)])


@bp.post("/api/deals")
def api_create_deal():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(error="send a JSON object"), 400
    try:
        deal = new_deal(body)
    except BadDeal as exc:
        return jsonify(error=str(exc)), 400
    session().add(deal)
    session().commit()  # a database error here is the server's fault: a 500
    return jsonify(as_json(deal, session().get(models().Contact, deal.contact_id))), 201


@bp.patch("/api/deals/<int:deal_id>")
def api_edit_deal(deal_id):
    """A salesperson edits a deal: an UPDATE of that one row (it waits for another
    transaction that holds the row's lock: a DELETE's, until its COMMIT)."""
    body = request.get_json(silent=True)
    try:
        amount = Decimal(str((body or {}).get("amount") or ""))
    except (InvalidOperation, AttributeError):
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or amount >= Decimal("1e10"):
        return jsonify(error="send {\"amount\": N}, above 0 and below 10,000,000,000"), 400
    m = models()
    changed = session().execute(sa.update(m.Deal).where(m.Deal.id == deal_id)
                                .values(amount=amount.quantize(Decimal("0.01")))).rowcount
    session().commit()
    if not changed:
        return jsonify(error=f"no deal {deal_id}"), 404
    return jsonify(id=deal_id, amount=str(amount.quantize(Decimal("0.01"))))


@bp.get("/api/health")
def health():
    session().execute(sa.text("SELECT 1"))
    return jsonify(status="ok")


def init_app(app, models_module):
    app.extensions["labapp.crm.models"] = models_module
    # flash() needs a session cookie: a fixed key is enough for a lab on 127.0.0.1
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = "labapp-on-loopback-only"
    app.register_blueprint(bp)
