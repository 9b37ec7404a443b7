import { AutoScalingClient, CompleteLifecycleActionCommand } from '@aws-sdk/client-auto-scaling';
import type { AccountSessions } from './accounts';
import { awsClient } from './aws';

/**
 * What Fleetwarden knows about Auto Scaling groups wherever it meets them: the tags that mark an
 * instance's group and protect an instance, and the group port for lifecycle actions.
 */

/** EC2 sets this tag on every instance a group launches. */
export const GROUP_NAME_TAG = 'aws:autoscaling:groupName';

/** `fleetwarden:do-not-disrupt=true` on an instance: no swap or repair ever touches it. */
export const DO_NOT_DISRUPT_TAG = 'fleetwarden:do-not-disrupt';

/** A group's pending terminate lifecycle action for one instance, as its event named it. */
export interface LifecycleAction {
  group: string;
  hook: string;
  token: string;
  instanceId: string;
  account: string;
  region: string;
}

export interface GroupLifecycle {
  /**
   * Lets the group go on with the termination (CONTINUE). Idempotent: an action that already
   * ended (completed by someone, or its heartbeat timeout passed) is `ended`, not an error.
   */
  continueTermination(action: LifecycleAction): Promise<'continued' | 'ended'>;
}

/**
 * CompleteLifecycleAction in the group's own account and region. The local emulator (moto 5.2)
 * stores lifecycle hooks but lacks this call, so it is tested by its decision and call shape.
 */
export class AutoScalingLifecycle implements GroupLifecycle {
  constructor(private readonly sessions: AccountSessions) {}

  async continueTermination(action: LifecycleAction): Promise<'continued' | 'ended'> {
    const client = awsClient(AutoScalingClient, await this.sessions.options(action.account, action.region));
    try {
      await client.send(new CompleteLifecycleActionCommand(continueTerminationInput(action)));
      return 'continued';
    } catch (error) {
      // AWS answers ValidationError "No active Lifecycle Action found with token …" once the action ended.
      if ((error as Error).name === 'ValidationError' && /no active lifecycle action/i.test((error as Error).message)) return 'ended';
      throw error;
    }
  }
}

/** The CompleteLifecycleAction request that lets a termination go on. */
export function continueTerminationInput(action: LifecycleAction) {
  return {
    AutoScalingGroupName: action.group,
    LifecycleHookName: action.hook,
    LifecycleActionToken: action.token,
    InstanceId: action.instanceId,
    LifecycleActionResult: 'CONTINUE',
  };
}
