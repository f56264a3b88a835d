"""Analysis of upstream: its preprocessor structure, C declarations and the porting surface (the model).

Imports: upstream/ and the base layer."""
