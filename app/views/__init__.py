"""PySide6 views. The only package (with app.main) allowed to import Qt."""
