"""The edge of warroom: Slack (Bolt), webhooks, REST API, health, metrics, CLI and rendering."""
