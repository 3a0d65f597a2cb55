"""Analysis stages: ingest, detect, features, engine (rules), findings and render."""
