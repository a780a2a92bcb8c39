// The HTTP layer: see HTTPTransport.swift.
