"""The MILES dashboard server: settings, database, JSON API, live stream and the `miles` command line."""
