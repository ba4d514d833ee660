"""Team mode: one DataOps service holds the store, the policy, the keys, the raw data and the
scheduler; users' servers, their kernels and job kernels are untrusted compute.

- :mod:`.service`: ``jupyter dataops serve``, the DataOps API as its own process (a JupyterHub
  service, or standalone with its own tokens), serving nothing else of Jupyter Server.
- :mod:`.hub`: users and groups from JupyterHub.
- :mod:`.client`: the extension in a user's server when ``c.DataOps.service_url`` is set: the
  same API, forwarded to the service as the server's user.
"""
