import Engine
print("vizlab")
