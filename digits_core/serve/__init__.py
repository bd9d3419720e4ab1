"""Serving training to people: the job runner (the one seam the pages start, continue,
rename, publish and delete runs through), where jobs train (threads, worker processes,
Ray), warming up a server, and how the dashboard is served (class mode, paths)."""
