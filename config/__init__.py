"""The project configuration: settings, the root URLs and the WSGI entry point. It may import every app;
no app imports it."""
