"""The bundled sandbox API (``drchrono_sandbox``), over real HTTP on 127.0.0.1."""
