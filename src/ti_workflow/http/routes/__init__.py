"""One router per resource, all under ``/v1``, included by ``http.app.create_app``.

``cases`` (create, read, list, update, fire, triggers, history), ``campaigns``
(window and timetable), ``system`` (health, ready, me). The audit area's routes
(``GET /v1/cases/{id}/state-at``, ``/verify``) and the notifications area's
(``GET /v1/cases/{id}/notifications``) are to be added as modules here, using
``context.Caller`` and ``problems.error_responses`` like the others.
"""
