"""Model registry (core): versioned manifests, aliases and promotion rules over a directory."""
