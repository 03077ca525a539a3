from .cli_chat import entry

entry()
