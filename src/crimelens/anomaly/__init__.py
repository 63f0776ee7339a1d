"""Unusual incidents: Isolation Forest scores with the reasons that make each incident stand out."""

from crimelens.anomaly.isolation import AnomalyResult, IncidentAnomalyDetector

__all__ = ["AnomalyResult", "IncidentAnomalyDetector"]
