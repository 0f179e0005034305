"""ML2 mechanism driver for the lab, which has no dataplane (no OVS, no OVN,
no agents): it binds every port on the first segment offered, as a real
driver does once its agent reports the host, and marks it ACTIVE, so nova's
fake driver gets a bound port and `server create --network` reaches ACTIVE.

Loaded by name (`mechanism_drivers = oslab_bindall`) through the entry point
in oslab_lab_shims-1.0.dist-info, found on neutron-api's --pythonpath.
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):

    def initialize(self):
        pass

    @property
    def connectivity(self):
        return portbindings.CONNECTIVITY_L2

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_OVS,
                                {portbindings.CAP_PORT_FILTER: True},
                                status=constants.PORT_STATUS_ACTIVE)
            return
