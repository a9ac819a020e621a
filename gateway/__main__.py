from services.common.runner import main

from .server import make_role

main("gateway", make_role)
