"""Privacy, fairness and monitoring: pseudonyms, geomasking, bias audits, drift."""
