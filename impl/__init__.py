"""The executable system: protocol, storage, broker, controller, coordinators, clients, runtimes."""
