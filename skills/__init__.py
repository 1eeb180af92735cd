"""Skills: one module per capability behind one small interface (see ``skills.base``).

Skills take a typed request and return a typed result (data, not Slack blocks). They never import
``bot``; the bot renders their results.
"""
