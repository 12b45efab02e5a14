"""placeholder"""
def resolve(*a, **k):
    raise NotImplementedError
