"""Faithful stand-ins for the outside systems the hub talks to, shipped with the project.

Plain Python (no Django): tests import them directly, and ``manage.py`` commands start them for
demos, e.g. ``python manage.py bamboohr_sandbox --port 8765 --api-key KEY --employees 200``.
"""
