"""The HTTP side: feeds, share redirects, the JSON API, the dashboard and operations routes."""
