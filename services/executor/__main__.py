from services.common.runner import main

from .service import make_role

main("executor", make_role)
