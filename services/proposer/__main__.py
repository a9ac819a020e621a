from services.common.runner import main

from .service import make_role

main("proposer", make_role)
