@_exported import Engine
@_exported import Models
