"""vbot's benchmark: throughput, reply latency, memory per viewer, start-up and a burst of
chatters using one command, side by side with a bare ``irc.client.SimpleIRCClient``. Run
``python -m bench`` (``--help`` for sizes).

Everything runs on 127.0.0.1 with a timeout on every wait; nothing here imports ``tests``.
"""
