"""Every surface a person or a program touches, over ``qa``'s public API only.

- ``ui.app`` / ``ui.render``: the Gradio page;
- ``ui.server``: the one ASGI app (the JSON API, ``POST /api/ask``, with the page mounted);
- ``ui.cli`` and its ``cli_*`` helpers: the ``speech-qa`` command;
- ``ui.cluster``, ``ui.cluster_index``, ``ui.cluster_encoder``: the Ray Serve deployment and
  index builds spread over a Ray cluster.

Only this package imports gradio, fastapi, uvicorn and ray; no retrieval logic lives here.
"""
