"""One router per API resource, mounted under ``/api/v1`` by :func:`crimelens.service.app.create_app`."""
