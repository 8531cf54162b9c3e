"""Built-in components, one module each; registered through the implmon.components entry points."""
