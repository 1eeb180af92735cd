"""A local Slack stand-in (fake Web API server) and a driver that sends signed requests to the app."""
