"""Drivers of crime (core): area layers, per-capita and smoothed rates, spatial regression, GWR and
risk terrain modelling."""
