"""The Gradio web page (see ``ui.app``). Only this package imports gradio."""
