"""The CRM's tables, as the labs start them.

Each lab copies this file into its workspace as `models.py` and changes it
there; the migrations you generate compare these classes with the database.
"""
import enum

from labapp import db


class DealCurrency(enum.Enum):
    USD = 0
    EUR = 1
    AED = 2
    GBP = 3


class ContactEventStatus(enum.Enum):
    INVITED = 0
    WONTSHOW = 1
    ATTENDED = 2
    DENIED = 3
    COULDNTMAKEIT = 4


class Contact(db.Model):
    __tablename__ = "contacts"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    email = db.Column(db.String(200), nullable=False, unique=True)


class Deal(db.Model):
    __tablename__ = "deals"
    id = db.Column(db.Integer, primary_key=True)
    contact_id = db.Column(db.Integer, db.ForeignKey("contacts.id"), nullable=False)
    title = db.Column(db.String(200), nullable=False)
    amount = db.Column(db.Numeric(12, 2), nullable=False)
    legacy_ref = db.Column(db.String(20))  # the old CRM's reference
    # stored as the PostgreSQL enum type `dealcurrency`
    currency = db.Column(db.Enum(DealCurrency, name="dealcurrency"), nullable=False)


class ContactEvent(db.Model):
    __tablename__ = "contact_events"
    id = db.Column(db.Integer, primary_key=True)
    contact_id = db.Column(db.Integer, db.ForeignKey("contacts.id"), nullable=False)
    title = db.Column(db.String(200), nullable=False)
    happened_at = db.Column(db.DateTime, nullable=False)
    # stored as the PostgreSQL enum type `contacteventstatus`
    status = db.Column(db.Enum(ContactEventStatus, name="contacteventstatus"), nullable=False)
