"""The CRM: its Flask extensions (below), its models, its pages and JSON API
(web), and its DATA folders (data; sample/ is the labs' sample data).

`db` and `migrate` are made here and bound to an app by `labapp.app.create_app`;
a lab workspace's models.py takes `db` from the top, `from labapp import db`.
"""
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()
