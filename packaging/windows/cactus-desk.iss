; Inno Setup 6 script: a per-user installer for the PyInstaller bundle in dist\cactus-desk.
;
;   iscc /DMyAppVersion=0.1.0 packaging\windows\cactus-desk.iss
;
; Build the bundle first with `pyinstaller --noconfirm packaging/cactus-desk.spec` from the
; repository root; it also renders build\cactus-desk\icons\cactus-desk.ico. Relative paths
; here are relative to this script's folder. Output: dist\cactus-desk-<version>-setup.exe.

#ifndef MyAppVersion
  #error Pass the version from the package: iscc /DMyAppVersion=X.Y.Z ...
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\cactus-desk"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\cactus-desk\icons\cactus-desk.ico"
#endif
#define MyAppName "Cactus Desk"
#define MyAppExeName "cactus-desk.exe"

[Setup]
; A fixed AppId ties upgrades and the uninstaller to this app; never change it.
AppId={{6B0F3C52-4E0B-4C55-9A7E-2D43C1F7A9B1}
AppName={#MyAppName}
AppVersion={#MyAppVersion}
AppVerName={#MyAppName} {#MyAppVersion}
AppPublisher=Cactus Desk
VersionInfoVersion={#MyAppVersion}
; Per-user install: no administrator rights, so {autopf} is the user's Programs folder.
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#MyAppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
LicenseFile=..\..\LICENSE
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\{#MyAppExeName}
UninstallDisplayName={#MyAppName}
OutputDir=..\..\dist
OutputBaseFilename=cactus-desk-{#MyAppVersion}-setup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#MyAppName}"; Filename: "{app}\{#MyAppExeName}"
Name: "{autodesktop}\{#MyAppName}"; Filename: "{app}\{#MyAppExeName}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#MyAppExeName}"; Description: "{cm:LaunchProgram,{#MyAppName}}"; Flags: nowait postinstall skipifsilent
