"""Locust entry point: chat-completion users at a constant load (``-u``, ``-r``, ``-t``).

    locust -f loadtests/locustfile.py --headless -u 8 -r 8 -t 60s \\
        --host http://127.0.0.1:8080/v1 --model summarization --csv out/run

See loadtests/README.md for every option; ``loadtests/shaped.py`` runs the same users under a
step, spike or soak shape instead.
"""

from loadtests.users import ChatUser

__all__ = ["ChatUser"]
