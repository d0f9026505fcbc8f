"""Profiles shipped with deid (installed as the ``deid._profiles`` package data).

``generated/`` is written by ``tools/generate_profiles.py`` from ``standard/``: do not edit it.
The other YAML files here are hand-written named profiles.
"""
