from services.common.runner import main

from .service import make_role

main("distiller", make_role)
