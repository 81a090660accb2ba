/// Lines shared by the Python servers tests start (moto, the faulty HTTP server).
enum PythonServerScript {
    /// A thread that ends the process once its parent is gone, so that a killed test run never
    /// leaves a server behind. Needs `os`, `threading` and `time` imported; indented for the
    /// scripts' top level.
    static let endsWithItsParent = """
        parent = os.getppid()
        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
        """
}
