"""The ``drchrono-assets`` command line: ``auth``, ``demo``, ``ui`` and ``sandbox``.

``main`` dispatches to each command's own module, which parses its own arguments. Only this
package may import the sandbox API server (``drchrono_sandbox``): the assets never talk to
it except over HTTP, as to drchrono.
"""
