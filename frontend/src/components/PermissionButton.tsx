import { Button, Tooltip, type ButtonProps } from '@mui/material';
import type { Permission } from '@/lib/permissions';
import { useCan } from '@/lib/session';

/** A button for an action that needs a permission: disabled, saying which, when the role lacks it. */
export function PermissionButton({
  permission,
  disabled,
  ...props
}: ButtonProps & { permission: Permission }) {
  const allowed = useCan(permission);
  if (allowed) return <Button disabled={disabled} {...props} />;
  return (
    <Tooltip title={`Needs the ${permission} permission`}>
      {/* A disabled button gets no pointer events; the span carries the tooltip and focus. */}
      <span
        tabIndex={0}
        aria-label={`${String(props['aria-label'] ?? props.children)}: needs the ${permission} permission`}
        data-missing-permission={permission}
      >
        <Button {...props} disabled />
      </span>
    </Tooltip>
  );
}
