def run(sock, pid, img): return []
