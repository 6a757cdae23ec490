"""What the body has done since the robot booted, as Spot's robot metrics count it: distance
walked, time with motors on, time standing, time walking, gait cycles, electric energy.

Integrated by the physics step (`add`), so the numbers grow exactly as the body moves.
"""

from __future__ import annotations

from dataclasses import dataclass

# Electric power drawn (W), close to a Spot's: computers and sensors always, motors holding a
# posture, and more while walking (grows with speed).
IDLE_POWER_W = 95.0
MOTORS_ON_POWER_W = 180.0
STANDING_POWER_W = 290.0
WALKING_POWER_W_PER_M_S = 160.0


@dataclass(frozen=True)
class BodyCounters:
    distance_m: float = 0.0
    powered_s: float = 0.0
    standing_s: float = 0.0
    walking_s: float = 0.0
    gait_cycles: float = 0.0  # also the trot's phase (cycles)
    energy_j: float = 0.0
    power_w: float = IDLE_POWER_W  # drawn now

    def add(self, dt: float, powered: bool, standing: bool, speed: float, gait_rate: float) -> BodyCounters:
        walking = gait_rate > 0.0
        power = IDLE_POWER_W
        if powered:
            power = STANDING_POWER_W if standing else MOTORS_ON_POWER_W
            if walking:
                power += WALKING_POWER_W_PER_M_S * speed
        return BodyCounters(
            distance_m=self.distance_m + speed * dt,
            powered_s=self.powered_s + (dt if powered else 0.0),
            standing_s=self.standing_s + (dt if standing else 0.0),
            walking_s=self.walking_s + (dt if walking else 0.0),
            gait_cycles=self.gait_cycles + gait_rate * dt,
            energy_j=self.energy_j + power * dt,
            power_w=power,
        )
