"""Dashboards: job results published as views that stakeholders open without a notebook.

``service.py`` publishing, access (viewers, share links), renders and their history;
``render.py`` the published view (nbconvert, code hidden, saved widget state, local assets);
``live.py`` the live view (Voila in this server, kernels from a capped pool, run as the viewer).
"""
