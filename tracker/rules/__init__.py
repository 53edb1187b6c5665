"""The rules layer: profiles, the query language, the explainable matcher and feedback."""
