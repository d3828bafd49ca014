"""This lab's CRM app: the kit's app factory, with the models in models.py.

`flask` finds this file by its name; run every `flask` command here.
"""
from labapp import create_app

app = create_app(models="models")
