"""Pure rendering helpers for the playground page: text escaping, transcript, charts. No gradio here."""
