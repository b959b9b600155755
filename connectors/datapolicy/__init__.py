"""Data policy building blocks for agent profiles: plain functions and values, no Django.

``hris_fields``  the HRIS field catalog (public / internal / restricted / special) and the choice of
                 which fields a call may request.
``hris_scope``   record scope over employees (department, division, location, active only, reports
                 of a manager), for reads and writes.
``sql_check``    a sqlglot parse of a SELECT that names the table or column outside an allow-list.
``pii``          masking of national ids, bank and card numbers, phones and e-mails in free text
                 (Presidio's pattern recognizers, no NLP model), and keyed pseudonyms.

The engine-side pieces live with their family: ``connectors.db.sqlite_authorizer`` (SQLite's
authorizer callback) and ``connectors.db.privileges`` (what a PostgreSQL or MariaDB role can read).
"""
